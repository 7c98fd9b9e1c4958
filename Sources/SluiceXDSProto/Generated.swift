// Swift generated from Protos/ (the Envoy xDS messages sluiced sends) lives beside this file;
// generate.sh regenerates it.
