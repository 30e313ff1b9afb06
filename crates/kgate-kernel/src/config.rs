//! TODO: config facts (in progress).
