"""The platform router's compatibility profile: ``/api/v1`` in the router's own shapes.

``views`` (the profile's routes over the registry's selectors and services), ``shapes`` (the
router's JSON), ``urls`` (``/api/v1/``: the profile's routes, then the whole API again).
"""
