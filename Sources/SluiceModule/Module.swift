@_exported import SluiceEnvoy
