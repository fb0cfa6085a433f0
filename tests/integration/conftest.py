"""The integration suite starts real servers: redis-server, rabbitmq-server,
API servers (uvicorn, gunicorn) and listener processes. Their starters, the
clients and the fixtures are the shared test harness in tests/harness/ (its
fixtures plugin is registered in tests/conftest.py), which the benchmark
(bench/) uses too."""
