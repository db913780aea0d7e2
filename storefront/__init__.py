"""The demo storefront: catalog pages, a session cart and checkout over the real catalog."""
