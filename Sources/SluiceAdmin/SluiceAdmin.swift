// The admin API of sluiced and the stores behind it.
