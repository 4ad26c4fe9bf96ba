-- The Dagster instance's own database beside the warehouse's (compose.yaml's postgres service).
CREATE DATABASE dagster OWNER storehouse;
