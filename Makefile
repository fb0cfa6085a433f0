# Developer shortcuts; each runs inside the pipenv environment.
PIPENV ?= PIPENV_VENV_IN_PROJECT=1 pipenv

.PHONY: setup test lint mutation mutation-results

setup:
	bash scripts/setup-env --dev

test:
	bash scripts/test

lint:
	$(PIPENV) run flake8 osism tests bench
	$(PIPENV) run black --check osism tests bench
	$(PIPENV) run mypy osism tests bench

# Mutation testing of osism/services/ against the unit suite (config in
# setup.cfg [mutmut]; coverage is off there since mutmut runs pytest itself).
mutation:
	rm -rf mutants
	$(PIPENV) run mutmut run --max-children 2
	$(PIPENV) run mutmut results

mutation-results:
	$(PIPENV) run mutmut results
