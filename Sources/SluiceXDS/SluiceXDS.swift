// xDS for sluiced: `EnvoyPlan` -> Envoy resources (ADS snapshots and `render`'s static
// bootstrap), and the ADS server.
