// Tests of the xDS encoding and the ADS server.
