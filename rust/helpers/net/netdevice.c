// SPDX-License-Identifier: GPL-2.0

#include <linux/netdevice.h>
#include <net/neighbour.h>

__rust_helper bool rust_helper_netif_running(const struct net_device *dev)
{
	return netif_running(dev);
}

__rust_helper int rust_helper_dev_hard_header(struct sk_buff *skb,
					      struct net_device *dev,
					      unsigned short type,
					      const void *daddr,
					      const void *saddr,
					      unsigned int len)
{
	return dev_hard_header(skb, dev, type, daddr, saddr, len);
}

__rust_helper void rust_helper_neigh_hold(struct neighbour *neigh)
{
	neigh_hold(neigh);
}

__rust_helper void rust_helper_neigh_release(struct neighbour *neigh)
{
	neigh_release(neigh);
}

__rust_helper void rust_helper_neigh_ha_snapshot(char *dst,
						 const struct neighbour *n,
						 const struct net_device *dev)
{
	neigh_ha_snapshot(dst, n, dev);
}
