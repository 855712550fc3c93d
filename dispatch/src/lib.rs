//! Multi-energy dispatch (placeholder until the dispatch issue lands).
