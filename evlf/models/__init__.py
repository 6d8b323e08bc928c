"""Model weights shipped inside the package (the `demo` model)."""
