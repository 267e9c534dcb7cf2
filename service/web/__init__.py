"""The review console: static pages served by the service, talking to the same API with the user's key."""
