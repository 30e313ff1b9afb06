//! TODO: sysctl facts (in progress).
