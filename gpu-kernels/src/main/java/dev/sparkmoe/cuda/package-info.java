/**
 * The CUDA driver, through JCuda: context, device and pinned buffers, streams, events, modules and kernel launches,
 * graphs. Every handle is {@link java.lang.AutoCloseable} with one owner (second close throws), tracked by
 * {@link dev.sparkmoe.cuda.LeakTracker}; every driver return code is checked and a failure is a
 * {@link dev.sparkmoe.cuda.CudaException} naming the call and its CUresult. The only package that imports jcuda.
 */
package dev.sparkmoe.cuda;
