// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmark of the xfrm packet offload output path.
 *
 * Times dst_output() on a stream of synthetic forwarded IPv4/UDP skbs
 * whose dst is the IPsec bundle the caller's network namespace resolves
 * for them, the way ip_forward_finish() hands a packet to xfrm.  What runs
 * inside the timed region is xfrm4_output(), xfrm_output(), the
 * registered output hook (or the stock path when it declines) and the
 * offload device's transmit.  Building the skbs and the softirqs they
 * raise on the peer stay outside, so variants that differ only in the
 * hook differ only there.
 *
 * Write "SADDR DADDR SIZE COUNT [floor]" to <debugfs>/xfrm_direct_tx_micro/run
 * from the namespace (nsenter --net, which keeps debugfs visible); read it
 * back for "calls C ns T median_ps M p10_ps F": T the time spent in
 * dst_output() for C calls; M and F the median and the 10th percentile
 * over batches of the time per call, in picoseconds. A vCPU that the host
 * deschedules or shares only ever makes a batch slower, so F is the
 * estimate of the code's own cost that a busy host disturbs least.
 * "floor" times the floor instead: the same skbs handed straight to
 * dev_queue_xmit() on the bundle's offload device, room for the
 * link-layer header pushed, with no xfrm work at all.
 * For bench/; not part of the netdev series.
 */

#include <linux/debugfs.h>
#include <linux/inet.h>
#include <linux/ip.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/timekeeping.h>
#include <linux/udp.h>
#include <net/dst.h>
#include <net/ip.h>
#include <net/route.h>
#include <net/xfrm.h>

/* skbs built before each timed batch: enough to amortise the clock reads,
 * few enough that the peer's backlog is not what drops them.
 */
#define MICRO_BATCH		64
#define MICRO_MAX_COUNT		10000000
#define MICRO_MAX_SIZE		9000

static struct dentry *micro_dir;
static DEFINE_MUTEX(micro_lock);
static u64 micro_calls, micro_ns, micro_median_ps, micro_p10_ps;

static int micro_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static struct sk_buff *micro_build_skb(struct dst_entry *dst, __be32 saddr,
				       __be32 daddr, unsigned int size, u16 id)
{
	unsigned int len = sizeof(struct iphdr) + sizeof(struct udphdr) + size;
	struct sk_buff *skb;
	struct udphdr *uh;
	struct iphdr *iph;

	skb = alloc_skb(LL_MAX_HEADER + len, GFP_KERNEL);
	if (!skb)
		return NULL;
	skb_reserve(skb, LL_MAX_HEADER);

	skb_reset_network_header(skb);
	iph = skb_put(skb, sizeof(*iph));
	*iph = (struct iphdr) {
		.version = 4,
		.ihl = 5,
		.ttl = 63,
		.protocol = IPPROTO_UDP,
		.tot_len = htons(len),
		.id = htons(id),
		.saddr = saddr,
		.daddr = daddr,
	};
	ip_send_check(iph);

	skb_set_transport_header(skb, sizeof(*iph));
	uh = skb_put(skb, sizeof(*uh));
	*uh = (struct udphdr) {
		.source = htons(9),
		.dest = htons(9),
		.len = htons(sizeof(*uh) + size),
	};
	skb_put_zero(skb, size);

	skb->protocol = htons(ETH_P_IP);
	skb_dst_set(skb, dst_clone(dst));
	return skb;
}

/* The bundle a forwarded packet from @saddr to @daddr goes out through. */
static struct dst_entry *micro_bundle(struct net *net, __be32 saddr,
				      __be32 daddr)
{
	struct flowi4 fl4 = {
		.daddr = daddr,
		.saddr = saddr,
		.flowi4_proto = IPPROTO_UDP,
		/* @saddr is not the gateway's own address */
		.flowi4_flags = FLOWI_FLAG_ANYSRC,
		.fl4_sport = htons(9),
		.fl4_dport = htons(9),
	};
	struct rtable *rt;

	/* With a protocol in the flow, this is the route through xfrm_lookup():
	 * the bundle, not the route under it.
	 */
	rt = ip_route_output_key(net, &fl4);
	if (IS_ERR(rt))
		return ERR_CAST(rt);
	if (!rt->dst.xfrm) {
		ip_rt_put(rt);
		return ERR_PTR(-ENOENT);
	}
	return &rt->dst;
}

/* The timed calls, out of line so that a profile can tell them from the
 * building of the skbs: bench/guest.sh counts the samples under this frame.
 */
static noinline void micro_output_batch(struct net *net,
					struct sk_buff **skbs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		dst_output(net, NULL, skbs[i]);
}

static noinline void micro_floor_batch(struct net_device *dev,
				       struct sk_buff **skbs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		skbs[i]->dev = dev;
		__skb_push(skbs[i], dev->hard_header_len);
		dev_queue_xmit(skbs[i]);
	}
}

static int micro_run(struct net *net, __be32 saddr, __be32 daddr,
		     unsigned int size, unsigned int count, bool floor)
{
	unsigned int i, n, batches = 0, nr_batches = DIV_ROUND_UP(count, MICRO_BATCH);
	struct sk_buff *batch[MICRO_BATCH];
	u64 calls = 0, ns = 0, *ps;
	struct net_device *dev = NULL;
	struct dst_entry *dst;
	int err = 0;

	ps = kvmalloc_array(nr_batches, sizeof(*ps), GFP_KERNEL);
	if (!ps)
		return -ENOMEM;
	dst = micro_bundle(net, saddr, daddr);
	if (IS_ERR(dst)) {
		kvfree(ps);
		return PTR_ERR(dst);
	}
	if (floor) {
		dev = dst->xfrm->xso.dev;
		if (!dev || LL_RESERVED_SPACE(dev) > LL_MAX_HEADER) {
			err = -ENODEV;
			goto out;
		}
	}

	while (calls < count) {
		u64 start;

		n = min_t(u64, MICRO_BATCH, count - calls);
		for (i = 0; i < n; i++) {
			batch[i] = micro_build_skb(dst, saddr, daddr, size,
						   calls + i);
			if (!batch[i]) {
				while (i--)
					kfree_skb(batch[i]);
				err = -ENOMEM;
				goto out;
			}
		}

		/* As in the forwarding path: in softirq context, so what the
		 * transmit schedules runs after the clock is read.
		 */
		local_bh_disable();
		start = ktime_get_ns();
		if (floor)
			micro_floor_batch(dev, batch, n);
		else
			micro_output_batch(net, batch, n);
		start = ktime_get_ns() - start;
		local_bh_enable();
		ns += start;
		ps[batches++] = div_u64(start * 1000, n);

		calls += n;
		cond_resched();
	}
out:
	dst_release(dst);
	sort(ps, batches, sizeof(*ps), micro_cmp_u64, NULL);
	micro_calls = calls;
	micro_ns = ns;
	micro_median_ps = batches ? ps[batches / 2] : 0;
	micro_p10_ps = batches ? ps[batches / 10] : 0;
	kvfree(ps);
	return err;
}

static ssize_t micro_run_write(struct file *file, const char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	char buf[80], src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN], mode[8] = "";
	unsigned int size, count;
	__be32 saddr, daddr;
	int err, n;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';

	n = sscanf(buf, "%15s %15s %u %u %7s", src, dst, &size, &count, mode);
	if (n < 4 || (n == 5 && strcmp(mode, "floor")) ||
	    !in4_pton(src, -1, (u8 *)&saddr, -1, NULL) ||
	    !in4_pton(dst, -1, (u8 *)&daddr, -1, NULL) ||
	    size > MICRO_MAX_SIZE || !count || count > MICRO_MAX_COUNT)
		return -EINVAL;

	mutex_lock(&micro_lock);
	err = micro_run(current->nsproxy->net_ns, saddr, daddr, size, count,
			n == 5);
	mutex_unlock(&micro_lock);

	return err ? err : len;
}

static int micro_run_show(struct seq_file *m, void *v)
{
	mutex_lock(&micro_lock);
	seq_printf(m, "calls %llu ns %llu median_ps %llu p10_ps %llu\n",
		   micro_calls, micro_ns, micro_median_ps, micro_p10_ps);
	mutex_unlock(&micro_lock);
	return 0;
}

static int micro_run_open(struct inode *inode, struct file *file)
{
	return single_open(file, micro_run_show, NULL);
}

static const struct file_operations micro_run_fops = {
	.owner = THIS_MODULE,
	.open = micro_run_open,
	.read = seq_read,
	.write = micro_run_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init micro_init(void)
{
	micro_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("run", 0600, micro_dir, NULL, &micro_run_fops);
	return 0;
}

static void __exit micro_exit(void)
{
	debugfs_remove(micro_dir);
}

module_init(micro_init);
module_exit(micro_exit);
MODULE_DESCRIPTION("Micro-benchmark of the xfrm packet offload output path");
MODULE_LICENSE("GPL");
