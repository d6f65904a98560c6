"""What every target that writes C++ shares (not a target itself): safe identifiers and comments from model
names (``names.py``), the C++ spelling of element types and dims (``cpp.py``), the per-node view emitters
write through (``context.py``) and the element-wise expressions (``expressions.py``).

Targets import this package and never each other (``tests/test_architecture.py``); it imports no target.
"""
