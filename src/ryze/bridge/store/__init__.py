"""The bridge's own tables and the repositories that read and write them."""
