//! AWS adapters: SQS, Secrets Manager, Lambda invoke.
