"""A faithful local klikit: the partner API at the same paths, with fault injection and a call record."""
