"""The local stack: the supervisor behind ``./dev up``, its processes, Label Studio's database and the demo
project."""
