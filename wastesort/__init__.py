"""wastesort: a waste-sorting photo classifier, from notebook to production and back."""

__version__ = "0.1.0"
