"""The upstream side: the client for upstream indexes and what is kept of them."""
