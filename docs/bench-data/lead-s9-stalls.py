import csv, sys, lzma, re, collections
f = lzma.open(sys.argv[1], 'rt')
rows = list(csv.reader(f))
hdr = rows[1]; data = rows[2:]
si = hdr.index('Source'); ns = hdr.index('Warp Stall Sampling (All Samples)')
stall_cols = [i for i, h in enumerate(hdr) if h.startswith('stall_') and 'Not Issued' not in h]
tot = 0; per = []
for r in data:
    if len(r) < len(hdr): continue
    try: n = int(r[ns])
    except: continue
    tot += n
    per.append((n, r[si].strip(), {hdr[i][6:]: int(r[i]) for i in stall_cols if r[i] not in ('', '-', '0')}))
print('total samples', tot)
byop = collections.Counter(); byreason = collections.Counter()
for n, s, d in per:
    op = s.split()[0] if s else '?'
    if op.startswith('@'): op = s.split()[1]
    byop[op.split('.')[0]] += n
    for k, v in d.items(): byreason[k] += v
print('by reason:', ', '.join(f'{k} {100*v/tot:.1f}%' for k, v in byreason.most_common(10)))
print('by opcode:', ', '.join(f'{k} {100*v/tot:.1f}%' for k, v in byop.most_common(12)))
print('top instructions:')
for i, (n, s, d) in enumerate(sorted(per, key=lambda x: -x[0])[:int(sys.argv[2]) if len(sys.argv) > 2 else 25]):
    print(f'{100*n/tot:5.1f}%  {s[:70]:70}  ' + ' '.join(f'{k}:{v}' for k, v in sorted(d.items(), key=lambda x: -x[1])[:3]))
