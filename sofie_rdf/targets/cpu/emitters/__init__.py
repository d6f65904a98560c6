"""The CPU emitters, one module per operator family (the families of ``ops/``); importing registers them."""
