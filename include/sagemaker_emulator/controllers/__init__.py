"""Background controllers: the loops that do what AWS services do on their own."""
