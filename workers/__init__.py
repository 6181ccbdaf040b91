"""Platform-side scan workers (queued jobs on Redis Streams): see the workers issue."""
