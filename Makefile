# Developer shortcuts; each runs inside the pipenv environment, with the
# pinned pipenv that scripts/setup-env keeps (or one on PATH).
PIPENV ?= PIPENV_VENV_IN_PROJECT=1 $(or $(wildcard tools/pipenv/.venv/bin/pipenv),pipenv)

.PHONY: setup test lint zuul-lint zuul-local mutation mutation-results

setup:
	bash scripts/setup-env --dev

test:
	bash scripts/test

lint:
	$(PIPENV) run flake8 osism tests bench
	$(PIPENV) run black --check osism tests bench
	$(PIPENV) run mypy osism tests bench

# .zuul.yaml and playbooks/: syntax check, yamllint, ansible-lint.
zuul-lint:
	bash tools/zuul-lint

# Every Zuul job's playbooks on this machine (tools/zuul-local --all).
zuul-local:
	bash tools/zuul-local --all

# Mutation testing of osism/services/ against the unit suite (config in
# setup.cfg [mutmut]; coverage is off there since mutmut runs pytest itself).
mutation:
	rm -rf mutants
	$(PIPENV) run mutmut run --max-children 2
	$(PIPENV) run mutmut results

mutation-results:
	$(PIPENV) run mutmut results
