"""The HTTP face of the index: a twisted.web Site whose resources are Klein apps."""
