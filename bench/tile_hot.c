// tile_hot.c - one Q4_0 / Q8_0 repacked tile kernel timed alone, weights and
// activations resident in cache: the arithmetic cost of a product without the
// weight stream (ns per 16-block group and row, and vpdpbusd per second), for
// 1-16 tokens. One thread, activations packed once outside the timing.
//
// Not built by CMake. From the repository root, after a Release build:
//   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/tile_hot.c build/libvisvm.a
//      $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o /tmp/tile_hot
//   /tmp/tile_hot [q8_0|q4_0] [N_IN (multiple of 512, default 2048)] [ROWS (default 256; 8 keeps all in L1)]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "base/cpu.h"
#include "base/threadpool.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/kernels_internal.h"
int main(int argc,char**argv){
  int type = argc>1 && !strcmp(argv[1],"q4_0") ? VV_TYPE_Q4_0 : VV_TYPE_Q8_0;
  int64_t n_in = argc>2? atoi(argv[2]):2048; int nr = argc>3? atoi(argv[3]):256;
  if (n_in < 512 || n_in % 512 || nr < 1 || nr > 4096) { fprintf(stderr, "tile_hot: N_IN a multiple of 512, ROWS 1..4096\n"); return 2; }
  vv_pool *pool = vv_pool_create(1);
  size_t rs = vv_row_size(type,n_in);
  uint8_t *w = vv_aalloc(rs*nr);
  vv_rng r; vv_rng_seed(&r,1);
  float *x = malloc(sizeof(float)*n_in*16);
  for(int64_t j=0;j<nr;j++){ for(int64_t i=0;i<n_in;i++) x[i]=vv_rng_normal(&r)*0.02f; vv_quantize_row(type,x,w+j*rs,n_in);}
  for(int64_t i=0;i<n_in*16;i++) x[i]=vv_rng_normal(&r);
  vv_tensor t; memset(&t,0,sizeof t); t.name="w"; t.type=type; t.n_dims=2; t.ne[0]=n_in; t.ne[1]=nr; t.ne[2]=t.ne[3]=1; t.data=w; vv_tensor_set_strides(&t);
  if (vv_matmul_repack(pool,&t) || !t.repacked) { fprintf(stderr, "tile_hot: no repacked kernel for this type on this CPU\n"); return 1; }
  const vv_mm_ops *ops = vv_get_mm_ops(type, VV_ISA_BEST);
  size_t ab = ops->act_size(n_in);
  uint8_t *act = vv_aalloc(ab*16);
  for(int k=0;k<16;k++) ops->pack(x+k*n_in, act+k*ab, n_in);
  float *y = malloc(sizeof(float)*nr*16);
  void *scr = vv_aalloc(ops->scratch_size(n_in)+64);
  int toks[]={1,2,4,6,8,16};
  long reps = 2000000/nr;
  for(int k=0;k<6;k++){ int nt=toks[k]; double best=1e9;
    for(int rep=0;rep<5;rep++){ double t0=vv_time_s(); for(long it=0;it<reps;it++) ops->tile_rp(n_in,t.repacked,rs,nr,act,ab,nt,y,nr,scr); double dt=(vv_time_s()-t0)/reps; if(dt<best)best=dt;}
    double dp = (double)n_in*nr*nt/64.0, grp=(double)n_in/512*nr;
    printf("T=%2d  %.3f us/call  %.2f G dpbusd/s  %.1f ns per row-group\n",nt,best*1e6,dp/best/1e9, best*1e9/grp);
  }
  return 0;
}
