-- docker compose: the postgres image creates the `dagster` database; MLflow's store gets its own.
CREATE DATABASE mlflow;
