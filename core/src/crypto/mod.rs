//! End-to-end crypto (client side) and the public-key checks the server needs.
//! Being written: see the crypto helper's task.
