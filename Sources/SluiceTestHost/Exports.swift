// Re-export the ABI types tests need to inspect raw statuses.
@_exported public import CEnvoyABI
