/*
 * cortex_m4_cycles.c -- QEMU TCG plugin: estimated Cortex-M4 cycles of the code run between two addresses.
 *
 * Built by codegen/cycles.py (gcc -shared, header from Debian's qemu source package; see docs/cycle-estimate.md)
 * and loaded with
 *   qemu-system-arm ... -plugin PATH.so,begin=0xADDR,end=0xADDR,out=FILE[,flash=LO:HI][,p=2][,div=12]
 *                                     [,art_line=16][,art_lines=8]
 *
 * Window: counting starts when the instruction at `begin` executes (it is counted) and stops when the
 * instruction at `end` executes (it is not). `begin` executed again inside a window closes it and opens the
 * next (laps: one window per op when `begin` is called before each). Every closed window appends one line to `out`:
 *   W insns=N cycles=C taken=T pipelined=K agu_stalls=S flash_reads=F flash_misses=M <class>=count:cycles ...
 * `cycles` is the 0-wait-state estimate; flash_reads (data reads in [LO, HI)) and flash_misses (those that miss
 * a model of the STM32 ART data cache: art_lines lines of art_line bytes, LRU) let the caller add wait states.
 *
 * Timing model (Cortex-M4 r0p1 TRM, 3.3 "Instruction set summary"; P = pipeline refill, option p):
 *   data processing, MUL/MLA/MLS, long multiplies, DSP/SIMD, IT, hints   1
 *   single LDR/STR (any size, LDREX/STREX)   2; 1 when it directly follows a single load/store (pipelined),
 *       unless the previous one was a store with a register offset or loaded the register the address uses
 *   LDRD/STRD 3 (1+N, never pipelined)     LDM/STM/PUSH/POP 1+N     TBB/TBH 2
 *   SDIV/UDIV `div` (TRM: 2..12, early termination; operands are not visible to a plugin)
 *   VLDR/VSTR 2, VLDM/VSTM/VPUSH/VPOP 1+N, VDIV/VSQRT 14, VMLA/VMLS/VNMLA/VFMA 3, other FP 1
 *   + P for every instruction after which the next one executed is not the fall-through (a taken branch,
 *     BX, POP/LDM/LDR into PC, TBB/TBH, MOV/ADD PC): taken-ness is read from the next executed address.
 *   + 1 for a load/store whose address register the previous instruction wrote as a data-processing
 *     result (TRM: "no forwarding path"; counted as agu_stalls).
 * Not modelled: LDR [PC] fetch contention,
 * instruction-fetch wait states, bus contention, exception entry/exit (an interrupt's handler is counted as
 * ordinary instructions).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum insn_class {
    C_ALU, C_MUL, C_DSP, C_DIV, C_LOAD, C_STORE, C_DUAL, C_MULTI, C_BRANCH, C_IT_HINT, C_FPU, C_FPU_LS,
    C_COUNT
};
static const char *const class_names[C_COUNT] = {
    "alu", "mul", "dsp", "div", "load", "store", "dual", "multi", "branch", "it_hint", "fpu", "fpu_ls",
};

#define NO_REG 0xFFu

/* One decoded instruction (one per guest address, shared by every translation of it). */
struct insn {
    uint64_t vaddr;
    uint8_t size;
    uint8_t cls;
    uint8_t cycles;     /* before pipelining and the taken-branch refill */
    uint8_t single_ls;  /* single load/store: may pipeline with a neighbour */
    uint8_t no_pipe_after; /* store with a register offset / load into PC: nothing pipelines after it */
    uint8_t rt, rn, rm; /* load destination, address registers (NO_REG when absent) */
    uint8_t rd, rd2;    /* registers a data-processing instruction writes (NO_REG when none) */
    uint8_t mem;        /* any load/store: its address may stall on the previous result */
    struct insn *next_in_bucket;
};

struct window {
    uint64_t insns, cycles, taken, pipelined, agu_stalls, flash_reads, flash_misses;
    uint64_t cls_count[C_COUNT], cls_cycles[C_COUNT];
};

static uint64_t begin_addr = UINT64_MAX, end_addr = UINT64_MAX;
static uint64_t flash_lo = 1, flash_hi = 0; /* empty unless given */
static unsigned refill = 2u, div_cycles = 12u;
static unsigned art_line_shift = 4u, art_lines = 8u;
static FILE *out;

static int active;
static const struct insn *prev;
static struct window win;
static uint64_t art_tag[64];
static unsigned art_used; /* lines of the ART model in use: filled once, kept across windows */

#define BUCKETS 65536u
static struct insn *table[BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned popcount16(uint32_t v)
{
    unsigned n = 0;
    for (v &= 0xFFFFu; v; v &= v - 1u) n++;
    return n;
}

static void set_ls(struct insn *d, int load, unsigned rt, unsigned rn, unsigned rm)
{
    d->cls = load ? C_LOAD : C_STORE;
    d->cycles = 2;
    d->single_ls = 1;
    d->rt = load ? (uint8_t)rt : NO_REG;
    d->rn = (uint8_t)rn;
    d->rm = (uint8_t)rm;
    if (load && rt == 15u) d->no_pipe_after = 1;
}

static void decode16(struct insn *d, uint32_t h)
{
    if ((h & 0xFFC0u) == 0x4340u) { d->cls = C_MUL; return; }                       /* MULS */
    if ((h & 0xFF00u) == 0x4700u) { d->cls = C_BRANCH; return; }                    /* BX, BLX */
    if ((h & 0xF800u) == 0x4800u) { set_ls(d, 1, (h >> 8) & 7u, 15u, NO_REG); return; } /* LDR literal */
    if ((h & 0xF000u) == 0x5000u) {                                                  /* register offset */
        const unsigned op = (h >> 9) & 7u;
        set_ls(d, op >= 3u, h & 7u, (h >> 3) & 7u, (h >> 6) & 7u);
        if (op < 3u) d->no_pipe_after = 1;
        return;
    }
    if ((h & 0xE000u) == 0x6000u || (h & 0xF000u) == 0x8000u) {                      /* immediate offset */
        set_ls(d, (h >> 11) & 1u, h & 7u, (h >> 3) & 7u, NO_REG);
        return;
    }
    if ((h & 0xF000u) == 0x9000u) { set_ls(d, (h >> 11) & 1u, (h >> 8) & 7u, 13u, NO_REG); return; } /* SP */
    if ((h & 0xF500u) == 0xB100u) { d->cls = C_BRANCH; return; }                    /* CBZ, CBNZ */
    if ((h & 0xFE00u) == 0xB400u || (h & 0xFE00u) == 0xBC00u) {                      /* PUSH, POP */
        d->cls = C_MULTI;
        d->rn = 13u;
        d->cycles = (uint8_t)(1u + popcount16(h & 0x1FFu));
        return;
    }
    if ((h & 0xFF00u) == 0xBF00u || (h & 0xFF00u) == 0xBE00u) { d->cls = C_IT_HINT; return; } /* IT, NOP, BKPT */
    if ((h & 0xF000u) == 0xC000u) {                                                  /* LDMIA, STMIA */
        d->cls = C_MULTI;
        d->rn = (uint8_t)((h >> 8) & 7u);
        d->cycles = (uint8_t)(1u + popcount16(h & 0xFFu));
        return;
    }
    if ((h & 0xF000u) == 0xD000u || (h & 0xF800u) == 0xE000u) { d->cls = C_BRANCH; return; } /* B, SVC */
    d->cls = C_ALU;
}

static void decode_fp(struct insn *d, uint32_t h1, uint32_t h2)
{
    const int cp_fp = ((h2 >> 9) & 7u) == 5u; /* coprocessor 10/11 */
    d->cls = C_FPU;
    if (!cp_fp) return;
    if ((h1 & 0xFE00u) == 0xEC00u) {                                                  /* extension load/store */
        if ((h1 & 0xFFE0u) == 0xEC40u) return;                                       /* VMOV 2 core regs */
        d->cls = C_FPU_LS;
        d->rn = (uint8_t)(h1 & 0xFu);
        if ((h1 & 0xFF20u) == 0xED00u) d->cycles = ((h2 >> 8) & 1u) ? 3 : 2;         /* VLDR, VSTR */
        else d->cycles = (uint8_t)(1u + (h2 & 0xFFu));                               /* VLDM, VSTM, VPUSH, VPOP */
        return;
    }
    if ((h1 & 0xFF00u) != 0xEE00u || (h2 & 0x10u)) return;                          /* VMOV core, VMRS: 1 */
    const unsigned opc1 = ((h1 >> 4) & 0xBu);
    if (opc1 == 0x0u || opc1 == 0x1u || opc1 == 0x9u || opc1 == 0xAu) d->cycles = 3; /* VMLA.. VFMA.. */
    else if (opc1 == 0x8u) d->cycles = 14;                                           /* VDIV */
    else if (opc1 == 0xBu && (h1 & 0xFu) == 1u && ((h2 >> 6) & 3u) == 3u) d->cycles = 14; /* VSQRT */
}

static void decode32(struct insn *d, uint32_t h1, uint32_t h2)
{
    if ((h1 & 0xFE40u) == 0xE800u) {                                                 /* LDM, STM (T2) */
        d->cls = C_MULTI;
        d->rn = (uint8_t)(h1 & 0xFu);
        d->cycles = (uint8_t)(1u + popcount16(h2));
        return;
    }
    if ((h1 & 0xFE40u) == 0xE840u) {                                                 /* dual, exclusive, TBB */
        if ((h1 & 0xFFF0u) == 0xE8D0u && (h2 & 0xFFE0u) == 0xF000u) { d->cls = C_BRANCH; d->cycles = 2; return; }
        if ((h1 & 0xFFE0u) == 0xE840u) { set_ls(d, (h1 >> 4) & 1u, h2 >> 12, h1 & 0xFu, NO_REG); return; }
        if ((h1 & 0xFFE0u) == 0xE8C0u && ((h2 >> 4) & 0xEu) == 0x4u) {                 /* LDREXB/H, STREXB/H */
            set_ls(d, (h1 >> 4) & 1u, h2 >> 12, h1 & 0xFu, NO_REG);
            return;
        }
        d->cls = C_DUAL;
        d->cycles = 3;
        d->rn = (uint8_t)(h1 & 0xFu);
        return;
    }
    if ((h1 & 0xEC00u) == 0xEC00u) { decode_fp(d, h1, h2); return; }                 /* coprocessor, FP */
    if ((h1 & 0xFE00u) == 0xEA00u) { d->cls = C_ALU; return; }                       /* shifted register */
    if ((h1 & 0xF800u) == 0xF000u) {
        if (!(h2 & 0x8000u)) { d->cls = C_ALU; return; }                              /* immediate forms */
        if ((h2 & 0xD000u) == 0x8000u && ((h1 >> 7) & 7u) == 7u) { d->cls = C_IT_HINT; return; } /* MSR.. DSB */
        d->cls = C_BRANCH;                                                            /* B, BL */
        return;
    }
    if ((h1 & 0xFE00u) == 0xF800u) {                                                 /* single load/store */
        const int load = (h1 >> 4) & 1u;
        const int reg_offset = !((h1 >> 7) & 1u) && (h2 & 0x0FC0u) == 0u && (h1 & 0xFu) != 15u;
        set_ls(d, load, h2 >> 12, h1 & 0xFu, reg_offset ? (h2 & 0xFu) : NO_REG);
        if (reg_offset && !load) d->no_pipe_after = 1;
        return;
    }
    if ((h1 & 0xFF00u) == 0xFA00u) {                                                 /* register data processing */
        const unsigned op1 = (h1 >> 4) & 0xFu;
        d->cls = ((h1 >> 7) & 1u) || op1 == 2u || op1 == 3u ? C_DSP : C_ALU; /* SIMD, Q*, SEL, SXTB16 ... */
        return;
    }
    if ((h1 & 0xFF80u) == 0xFB00u) {                                                 /* multiply, MAC */
        d->cls = ((h1 >> 4) & 7u) == 0u && (h2 & 0xE0u) == 0u ? C_MUL : C_DSP;        /* MUL, MLA, MLS : SMLAD.. */
        return;
    }
    if ((h1 & 0xFF80u) == 0xFB80u) {                                                 /* long multiply, divide */
        const unsigned op1 = (h1 >> 4) & 7u;
        if ((op1 == 1u || op1 == 3u) && (h2 & 0xF0u) == 0xF0u) { d->cls = C_DIV; d->cycles = (uint8_t)div_cycles; }
        else d->cls = ((h2 >> 4) & 0xFu) == 0u ? C_MUL : C_DSP;                       /* SMULL.. : SMLALD.. */
        return;
    }
    d->cls = C_ALU;
}

/* Registers written by a data-processing, multiply or divide instruction (for the address-generation stall). */
static void decode_dest(struct insn *d, uint32_t h1, uint32_t h2, int wide)
{
    unsigned rd = NO_REG;
    if (!wide) {
        const uint32_t h = h1;
        if ((h & 0xE000u) == 0x0000u) rd = h & 7u;                                     /* shifts, add/sub */
        else if ((h & 0xE000u) == 0x2000u) rd = ((h >> 11) & 3u) == 1u ? NO_REG : (h >> 8) & 7u; /* not CMP */
        else if ((h & 0xFC00u) == 0x4000u) {                                            /* ALU register ops */
            const unsigned op = (h >> 6) & 0xFu;
            rd = (op == 8u || op == 10u || op == 11u) ? NO_REG : h & 7u;                /* not TST, CMP, CMN */
        } else if ((h & 0xFC00u) == 0x4400u) {                                          /* hi-register ADD, MOV */
            const unsigned op = (h >> 8) & 3u;
            rd = (op == 0u || op == 2u) ? (((h >> 4) & 8u) | (h & 7u)) : NO_REG;
        } else if ((h & 0xF000u) == 0xA000u) rd = (h >> 8) & 7u;                        /* ADR, ADD Rd, SP */
        else if ((h & 0xFF00u) == 0xB000u) rd = 13u;                                    /* ADD/SUB SP */
        else if ((h & 0xF000u) == 0xB000u) rd = h & 7u;                                 /* extend, REV */
    } else {
        rd = (h2 >> 8) & 0xFu;                         /* Rd of every 32-bit data-processing/multiply encoding */
        if ((h1 & 0xFF80u) == 0xFB80u && ((h1 >> 4) & 7u) != 1u && ((h1 >> 4) & 7u) != 3u) {
            d->rd2 = (uint8_t)(h2 >> 12);              /* long multiply: RdLo too */
        }
        if (rd == 15u) rd = NO_REG;                    /* TST, TEQ, CMP, CMN */
    }
    d->rd = (uint8_t)rd;
}

static struct insn *lookup(uint64_t vaddr, const uint8_t *bytes, size_t size)
{
    const unsigned b = (unsigned)((vaddr >> 1) % BUCKETS);
    pthread_mutex_lock(&table_lock);
    struct insn *d = table[b];
    while (d && d->vaddr != vaddr) d = d->next_in_bucket;
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) abort();
        d->vaddr = vaddr;
        d->size = (uint8_t)size;
        d->cycles = 1;
        d->rt = d->rn = d->rm = d->rd = d->rd2 = NO_REG;
        const uint32_t h1 = (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8);
        const uint32_t h2 = size >= 4u ? (uint32_t)bytes[2] | ((uint32_t)bytes[3] << 8) : 0u;
        if (size >= 4u) decode32(d, h1, h2);
        else decode16(d, h1);
        if (d->cls == C_ALU || d->cls == C_MUL || d->cls == C_DSP || d->cls == C_DIV) {
            decode_dest(d, h1, h2, size >= 4u);
        }
        d->mem = d->cls == C_LOAD || d->cls == C_STORE || d->cls == C_DUAL || d->cls == C_MULTI ||
                 d->cls == C_FPU_LS;
        d->next_in_bucket = table[b];
        table[b] = d;
    }
    pthread_mutex_unlock(&table_lock);
    return d;
}

static void close_window(void)
{
    if (out) {
        fprintf(out, "W insns=%" PRIu64 " cycles=%" PRIu64 " taken=%" PRIu64 " pipelined=%" PRIu64
                " agu_stalls=%" PRIu64 " flash_reads=%" PRIu64 " flash_misses=%" PRIu64, win.insns, win.cycles,
                win.taken, win.pipelined, win.agu_stalls, win.flash_reads, win.flash_misses);
        for (unsigned c = 0; c < C_COUNT; c++) {
            fprintf(out, " %s=%" PRIu64 ":%" PRIu64, class_names[c], win.cls_count[c], win.cls_cycles[c]);
        }
        fputc('\n', out);
        fflush(out);
    }
    active = 0;
    prev = NULL;
}

static int writes(const struct insn *p, unsigned r)
{
    return r != NO_REG && (p->rd == r || p->rd2 == r);
}

/* Once per executed instruction: settle the previous one's refill, then charge this one. */
static void on_exec(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    const struct insn *d = udata;
    if (!active && d->vaddr != begin_addr) return;
    if (prev && d->vaddr != prev->vaddr + prev->size) {
        win.cycles += refill;
        win.taken++;
        win.cls_cycles[prev->cls] += refill;
    }
    if (active && (d->vaddr == end_addr || d->vaddr == begin_addr)) close_window();
    if (d->vaddr == end_addr) return;
    if (!active) {
        /* A new window; the ART model's contents carry over from the previous lap, as the cache's would. */
        memset(&win, 0, sizeof win);
        active = 1;
        prev = NULL;
    }
    unsigned cost = d->cycles;
    if (d->single_ls && prev && prev->single_ls && !prev->no_pipe_after &&
        (prev->rt == NO_REG || (prev->rt != d->rn && prev->rt != d->rm))) {
        cost -= 1u;
        win.pipelined++;
    }
    if (d->mem && prev && (writes(prev, d->rn) || writes(prev, d->rm))) {
        cost += 1u;
        win.agu_stalls++;
    }
    win.insns++;
    win.cycles += cost;
    win.cls_count[d->cls]++;
    win.cls_cycles[d->cls] += cost;
    prev = d;
}

/* Reads of the flash range, and whether they hit the ART data-cache model (LRU). */
static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (!active || qemu_plugin_mem_is_store(info) || vaddr < flash_lo || vaddr >= flash_hi) return;
    win.flash_reads++;
    const uint64_t tag = vaddr >> art_line_shift;
    unsigned i = 0;
    while (i < art_used && art_tag[i] != tag) i++;
    if (i == art_used) {
        win.flash_misses++;
        if (art_used < art_lines) art_used++;
        i = art_used - 1u;
    }
    memmove(&art_tag[1], &art_tag[0], i * sizeof art_tag[0]);
    art_tag[0] = tag;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    const size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const size_t size = qemu_plugin_insn_size(insn);
        const uint8_t *bytes = qemu_plugin_insn_data(insn);
        struct insn *d = lookup(qemu_plugin_insn_vaddr(insn), bytes, size);
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_exec, QEMU_PLUGIN_CB_NO_REGS, d);
        /* Reads and writes, filtered in on_mem: QEMU 7.2 calls a QEMU_PLUGIN_MEM_R callback on stores only. */
        if (d->cls == C_LOAD || d->cls == C_DUAL || d->cls == C_MULTI || d->cls == C_FPU_LS || d->cls == C_BRANCH) {
            qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        }
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    if (out) fclose(out);
    out = NULL;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    *v = strtoull(s, &end, 0);
    return end != s && *end == '\0';
}

static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) return 0;
    const size_t klen = (size_t)(eq - arg);
    const char *val = eq + 1;
    uint64_t v;
#define KEY(k) (klen == sizeof(k) - 1u && strncmp(arg, k, klen) == 0)
    if (KEY("out")) return (out = fopen(val, "a")) != NULL;
    if (KEY("flash")) {
        const char *colon = strchr(val, ':');
        char lo[32];
        if (!colon || (size_t)(colon - val) >= sizeof lo) return 0;
        memcpy(lo, val, (size_t)(colon - val));
        lo[colon - val] = '\0';
        return parse_u64(lo, &flash_lo) && parse_u64(colon + 1, &flash_hi);
    }
    if (!parse_u64(val, &v)) return 0;
    if (KEY("begin")) begin_addr = v & ~(uint64_t)1u; /* a Thumb function symbol has bit 0 set */
    else if (KEY("end")) end_addr = v & ~(uint64_t)1u;
    else if (KEY("p") && v <= 3u) refill = (unsigned)v;
    else if (KEY("div") && v >= 2u && v <= 12u) div_cycles = (unsigned)v;
    else if (KEY("art_lines") && v >= 1u && v <= 64u) art_lines = (unsigned)v;
    else if (KEY("art_line") && v >= 1u && v <= 4096u && (v & (v - 1u)) == 0u) {
        art_line_shift = 0;
        while ((1u << art_line_shift) < v) art_line_shift++;
    } else return 0;
    return 1;
#undef KEY
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!parse_arg(argv[i])) {
            fprintf(stderr, "cortex_m4_cycles: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!out || begin_addr == UINT64_MAX || end_addr == UINT64_MAX) {
        fprintf(stderr, "cortex_m4_cycles: needs begin=ADDR,end=ADDR,out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
