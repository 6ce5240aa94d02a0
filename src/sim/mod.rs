//! The platform simulator: a TOP gateway with a believable shop behind it.
