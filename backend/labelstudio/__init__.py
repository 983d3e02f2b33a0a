"""Talking to Label Studio: the SDK client and the rows it reads, the task mirror, the write gate every
writer shares, and the secret path segment that proves a request comes from a connected project."""
