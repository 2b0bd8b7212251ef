"""Benchmark scripts reproducing the published ATM-VFI evaluation protocols (Vimeo90K, UCF101,
SNU-FILM, Xiph) with one shared loop (`evaluate`) and metrics module (`metrics`)."""
