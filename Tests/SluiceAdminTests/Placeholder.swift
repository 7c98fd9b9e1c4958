// Tests of the admin API and its stores.
