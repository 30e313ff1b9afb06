//! Applying policies to a host (in progress).
