"""export component."""
