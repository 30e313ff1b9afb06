//! TODO: host facts (in progress).
