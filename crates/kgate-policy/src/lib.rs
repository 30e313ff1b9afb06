//! kgate policy model (in progress).
