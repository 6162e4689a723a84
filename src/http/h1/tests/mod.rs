//! Each test feeds the codec bytes as a client would, often split at every
//! point, and checks what it decides.

mod chunked;
mod encode;
mod head;
mod properties;
