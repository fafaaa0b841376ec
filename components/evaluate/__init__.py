"""evaluate component."""
