"""What the HTTP process serves: the ML-backend protocol's routes, request parsing and errors, the predictor,
the status payload, the dashboard and its advice."""
