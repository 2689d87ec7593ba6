"""The HTTP face of fireflow (``fireflow serve``, the ``server`` extra): see docs/service.md.

* :mod:`fireflow.service.engine`: the one module that calls the library;
* :mod:`fireflow.service.auth`: principals, bearer tokens stored as salted hashes,
  the :class:`~fireflow.service.auth.Authenticator` protocol for a district's own SSO;
* :mod:`fireflow.service.audit`: the append-only, hash-chained request log;
* :mod:`fireflow.service.problems`: RFC 9457 problem details for every error;
* :mod:`fireflow.service.models`: the pydantic models of the responses;
* :mod:`fireflow.service.app`: :func:`~fireflow.service.app.create_app` (FastAPI);
* :mod:`fireflow.service.dashboard`: the read-only HTML dashboard;
* :mod:`fireflow.service.clock`: the one read of the real time (the service is an edge);
* :mod:`fireflow.service.webhooks`: signed webhooks with retries and dead letters;
* :mod:`fireflow.cli.serve`: ``fireflow serve`` and ``fireflow serve token``.

Importing this package needs nothing beyond fireflow; FastAPI and uvicorn are
imported by the modules that use them.
"""
