//! The gateway: the one public endpoint of Rapport.
