//! Access delta between two policy sets, in covenant terms.
