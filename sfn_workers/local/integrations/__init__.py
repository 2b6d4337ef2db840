"""The local runner's Task integrations other than Lambda, one module per AWS integration.

:class:`sfn_workers.local.services.Services` dispatches a Task's Resource to one of them.
"""
