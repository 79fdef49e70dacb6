"""HTTP transport: the Site and channel, the fast lane, bodies in and out."""
