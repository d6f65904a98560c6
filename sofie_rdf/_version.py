"""The package version, in a module of its own so that code generation can name it without importing the
package (and, through it, every front end)."""

__version__ = "0.1.0"
