// SPDX-License-Identifier: GPL-2.0
/*
 * C reference for the xfrm packet offload output hook.
 *
 * Upstream's xfrm_dev_direct_output() logic (5eddd76ec2fd, 59630e2ccd72,
 * 2aed51fc58d9) behind the same hook as the Rust module, with the same
 * checks and counters, and the same transport mode (the frame's own L2
 * header, to the next hop's resolved neighbour), so that side by side runs
 * measure only the cost of the language.  Its direct_transport is read at
 * load time, as the Rust module's is.  For tests and benchmarks; not part
 * of the netdev series.
 */

#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <net/dst.h>
#include <net/neighbour.h>
#include <net/xfrm.h>

static bool direct_transport;
module_param(direct_transport, bool, 0444);
MODULE_PARM_DESC(direct_transport,
		 "Send forwarded transport mode packets directly (default: N)");

enum cref_counter {
	CREF_DIRECT,
	CREF_DECLINED_NOT_PACKET_OFFLOAD,
	CREF_DECLINED_LOCAL,
	CREF_DECLINED_TRANSPORT,
	CREF_DECLINED_MODE,
	CREF_DECLINED_NO_NEIGH,
	CREF_LOCAL_OUT_CONSUMED,
	CREF_DROP_NO_ROUTE,
	CREF_DROP_NO_DEVICE,
	CREF_DROP_DEVICE_DOWN,
	CREF_DROP_HEADROOM,
	CREF_XMIT_ERROR,
	CREF_NR,
};

static const char * const cref_counter_names[CREF_NR] = {
	"direct",
	"declined_not_packet_offload",
	"declined_local",
	"declined_transport",
	"declined_mode",
	"declined_no_neigh",
	"local_out_consumed",
	"drop_no_route",
	"drop_no_device",
	"drop_device_down",
	"drop_headroom",
	"xmit_error",
};

struct cref_counters {
	u64 v[CREF_NR];
};

static struct cref_counters __percpu *cref_counters;
static struct dentry *cref_dir;

static void cref_inc(enum cref_counter c)
{
	this_cpu_inc(cref_counters->v[c]);
}

static int cref_drop(struct sk_buff *skb, struct xfrm_state *x,
		     enum cref_counter c, enum skb_drop_reason reason, int err)
{
	cref_inc(c);
	XFRM_INC_STATS(xs_net(x), LINUX_MIB_XFRMOUTERROR);
	kfree_skb_reason(skb, reason);
	return err;
}

/* Transport mode: the next hop's address, if its neighbour is resolved. */
static bool cref_next_hop(struct sk_buff *skb, char *ha)
{
	struct dst_entry *child = xfrm_dst_child(skb_dst(skb));
	struct neighbour *n;
	bool valid;

	if (!child)
		return false;
	n = dst_neigh_lookup_skb(child, skb);
	if (!n)
		return false;
	valid = READ_ONCE(n->nud_state) & NUD_VALID;
	if (valid)
		neigh_ha_snapshot(ha, n, n->dev);
	neigh_release(n);
	return valid;
}

static int cref_direct_output(struct sock *sk, struct xfrm_state *x,
			      struct sk_buff *skb, const char *ha)
{
	/* The device encapsulates: the packet keeps the bundle's family. */
	const struct dst_ops *inner_ops = skb_dst(skb)->ops;
	struct net *net = xs_net(x);
	struct net_device *dev;
	struct dst_entry *dst;
	int err;

	/* skb_dst_pop(), which is local to net/xfrm/xfrm_output.c */
	dst = dst_clone(xfrm_dst_child(skb_dst(skb)));
	skb_dst_drop(skb);
	if (!dst)
		return cref_drop(skb, x, CREF_DROP_NO_ROUTE,
				 SKB_DROP_REASON_IP_OUTNOROUTES, -EHOSTUNREACH);
	skb_dst_set(skb, dst);
	nf_reset_ct(skb);

	err = inner_ops->local_out(net, sk, skb);
	if (unlikely(err != 1)) {
		cref_inc(CREF_LOCAL_OUT_CONSUMED);
		return err;
	}

	dev = READ_ONCE(x->xso.dev);
	if (!dev)
		return cref_drop(skb, x, CREF_DROP_NO_DEVICE,
				 SKB_DROP_REASON_DEV_READY, -ENODEV);
	if (!netif_running(dev))
		return cref_drop(skb, x, CREF_DROP_DEVICE_DOWN,
				 SKB_DROP_REASON_DEV_READY, -ENETDOWN);
	if (skb_cow_head(skb, dev->hard_header_len))
		return cref_drop(skb, x, CREF_DROP_HEADROOM,
				 SKB_DROP_REASON_NOMEM, -ENOMEM);

	skb->dev = dev;
	if (ha) {
		if (dev_hard_header(skb, dev, ntohs(skb->protocol), ha, NULL,
				    skb->len) < 0)
			return cref_drop(skb, x, CREF_DROP_HEADROOM,
					 SKB_DROP_REASON_NOMEM, -ENOMEM);
	} else {
		__skb_push(skb, dev->hard_header_len);
	}

	cref_inc(CREF_DIRECT);
	err = dev_queue_xmit(skb);
	if (err && err != NET_XMIT_CN)
		cref_inc(CREF_XMIT_ERROR);
	return err;
}

static bool cref_output(const struct xfrm_dev_output_hook *hook,
			struct sock *sk, struct xfrm_state *x,
			struct sk_buff *skb, int *err)
{
	enum cref_counter declined;
	char ha[MAX_ADDR_LEN];

	if (x->xso.type != XFRM_DEV_OFFLOAD_PACKET)
		declined = CREF_DECLINED_NOT_PACKET_OFFLOAD;
	else if (skb->sk)
		declined = CREF_DECLINED_LOCAL;
	else if (x->props.mode == XFRM_MODE_TUNNEL)
		goto direct;
	else if (x->props.mode != XFRM_MODE_TRANSPORT)
		declined = CREF_DECLINED_MODE;
	else if (!direct_transport)
		declined = CREF_DECLINED_TRANSPORT;
	else if (cref_next_hop(skb, ha))
		goto direct_transport;
	else
		declined = CREF_DECLINED_NO_NEIGH;

	cref_inc(declined);
	return false;

direct:
	*err = cref_direct_output(sk, x, skb, NULL);
	return true;

direct_transport:
	*err = cref_direct_output(sk, x, skb, ha);
	return true;
}

static const struct xfrm_dev_output_hook cref_hook = {
	.output = cref_output,
};

static int cref_counters_show(struct seq_file *m, void *v)
{
	int i, cpu;

	for (i = 0; i < CREF_NR; i++) {
		u64 sum = 0;

		for_each_possible_cpu(cpu)
			sum += READ_ONCE(per_cpu_ptr(cref_counters, cpu)->v[i]);
		seq_printf(m, "%s %llu\n", cref_counter_names[i], sum);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(cref_counters);

static int __init cref_init(void)
{
	int err;

	cref_counters = alloc_percpu(struct cref_counters);
	if (!cref_counters)
		return -ENOMEM;

	err = xfrm_dev_output_hook_register(&cref_hook);
	if (err) {
		if (err == -EBUSY)
			pr_err("the xfrm packet offload output hook is taken by another module\n");
		free_percpu(cref_counters);
		return err;
	}

	cref_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("counters", 0444, cref_dir, NULL,
			    &cref_counters_fops);
	return 0;
}

static void __exit cref_exit(void)
{
	debugfs_remove(cref_dir);
	xfrm_dev_output_hook_unregister(&cref_hook);
	free_percpu(cref_counters);
}

module_init(cref_init);
module_exit(cref_exit);
MODULE_DESCRIPTION("C reference for the xfrm packet offload output hook");
MODULE_LICENSE("GPL");
