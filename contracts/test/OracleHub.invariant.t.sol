// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./utils/Test.sol";
import {OracleHub} from "../src/OracleHub.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {Sig, Packing} from "./utils/Packing.sol";

/// @notice Drives the hub with random batches signed by random subsets of a key pool, random signer
///         set changes and time jumps, and records (ghost state) every report that was part of a
///         batch signed by a quorum of the signer set at that moment.
contract HubHandler is Test {
    OracleHub public immutable hub;
    address public immutable owner;
    uint256 internal constant FEEDS = 4;
    int256 public constant MIN = 100e8;
    int256 public constant MAX = 1_000_000e8;

    uint256[] internal pool; // 6 keys; the first 3 start authorized
    /// @dev feed => round => keccak(price, observedAt) => whether a quorum-signed batch carried it
    ///      (a set: later batches may carry other, skipped reports for the same round).
    mapping(uint256 => mapping(uint32 => mapping(bytes32 => bool))) public signedByQuorum;
    /// @dev Highest round each feed was seen at after any call.
    uint32[FEEDS] public highestSeen;
    bool public roundWentBack;
    bool public acceptedWithoutQuorum;
    /// @dev Set when a landed batch left a feed at another round than the handler's own reading of the
    ///      rules predicted.
    bool public predictionMissed;
    uint256 public submits;
    uint256 public accepted;
    uint256 public reportsSent;
    /// @dev Rounds the feeds advanced by in total (reports applied).
    uint256 public applied;

    constructor(OracleHub hub_, address owner_, uint256[] memory keys) {
        hub = hub_;
        owner = owner_;
        pool = keys;
    }

    function feedId(uint256 i) public pure returns (bytes32) {
        return keccak256(abi.encodePacked("INV", i));
    }

    function submit(uint256 seed, uint8 mask, uint8 count) external {
        count = uint8(bound(count, 1, 5));
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](count);
        // Each feed's round and observation time as the hub will see them while it applies this batch in
        // order (a second report for a feed follows the first one if that one applies).
        uint32[FEEDS] memory round;
        uint32[FEEDS] memory observed;
        for (uint256 i = 0; i < FEEDS; ++i) {
            (round[i],, observed[i],) = hub.latestByIndex(uint16(i));
        }
        for (uint256 j = 0; j < count; ++j) {
            uint256 s = uint256(keccak256(abi.encode(seed, j)));
            uint16 index = uint16(s % FEEDS);
            // Mostly the next round (so that batches land); sometimes a repeat or a gap.
            uint256 pick = (s >> 8) % 12;
            uint32 roundId = pick == 0 ? round[index] : pick == 1 ? round[index] + 2 : round[index] + 1;
            // Mostly a time the hub accepts (not before the stored one, not older than 120 s); sometimes
            // one too far ahead or too old.
            uint256 timing = (s >> 96) % 12;
            uint32 at = uint32(block.timestamp - (s >> 104) % 20);
            if (at < observed[index]) at = observed[index];
            if (timing == 0) at = uint32(block.timestamp + 61 + (s >> 104) % 20);
            if (timing == 1) at = uint32(block.timestamp - 121 - (s >> 104) % 20);
            int128 price = int128(int256(bound(s >> 16, uint256(MIN) - 5, uint256(MAX) + 5)));
            if ((s >> 128) % 12 == 0) price = (s >> 136) % 2 == 0 ? int128(MIN) : int128(MAX);
            reports[j] = IOracleHub.Report({feedIndex: index, roundId: roundId, price: price, observedAt: at});
            if (_applies(reports[j], round[index], observed[index])) {
                round[index] = roundId;
                observed[index] = at;
            }
        }
        // Three calls in four (decided by a hash, as the fuzzer favours small and edge values), or always
        // with the top bit of `mask`: exactly the keys that are signers now, a valid quorum, so that
        // batches land often. Otherwise the subset of the pool the low 6 bits of `mask` pick. Ordered by
        // address.
        bool quorumPath = mask & 0x80 != 0 || uint256(keccak256(abi.encode(seed, mask, "quorum"))) % 4 != 0;
        uint256[] memory chosen = new uint256[](pool.length);
        uint256 n;
        uint256 authorized;
        bool allAuthorized = true;
        for (uint256 i = 0; i < pool.length; ++i) {
            bool pick = quorumPath ? hub.isSigner(vm.addr(pool[i])) : mask & (1 << i) != 0;
            if (!pick) continue;
            chosen[n++] = pool[i];
            if (hub.isSigner(vm.addr(pool[i]))) ++authorized;
            else allAuthorized = false;
        }
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(chosen[j]) < vm.addr(chosen[i])) (chosen[i], chosen[j]) = (chosen[j], chosen[i]);
            }
        }
        bytes32 digest = hub.batchDigest(Packing.pack(reports));
        Sig[] memory sigs = new Sig[](n);
        for (uint256 i = 0; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s_) = vm.sign(chosen[i], digest);
            sigs[i] = Sig({v: v, r: r, s: s_});
        }
        bool quorum = allAuthorized && authorized >= hub.threshold();
        if (quorum) {
            for (uint256 j = 0; j < count; ++j) {
                signedByQuorum[
                    reports[j].feedIndex
                ][reports[j].roundId][keccak256(abi.encode(reports[j].price, reports[j].observedAt))] = true;
            }
        }
        ++submits;
        reportsSent += count;
        try hub.submit(Packing.pack(reports), Packing.pack(sigs)) {
            ++accepted;
            if (!quorum) acceptedWithoutQuorum = true;
            for (uint256 i = 0; i < FEEDS; ++i) {
                (uint32 now_,,,) = hub.latestByIndex(uint16(i));
                if (now_ != round[i]) predictionMissed = true;
            }
        } catch {}
        _observe();
    }

    /// @dev The hub's rules for a report on a registered, unpaused feed (the handler never pauses).
    function _applies(IOracleHub.Report memory r, uint32 latestRound, uint32 latestAt)
        internal
        view
        returns (bool)
    {
        return uint256(r.roundId) == uint256(latestRound) + 1 && r.observedAt >= latestAt
            && r.observedAt <= block.timestamp + 60 && uint256(r.observedAt) + 120 >= block.timestamp
            && r.price > MIN && r.price < MAX;
    }

    function addSigner(uint8 which) external {
        address signer = vm.addr(pool[which % pool.length]);
        if (hub.isSigner(signer)) return;
        vm.prank(owner);
        hub.addSigner(signer);
        _observe();
    }

    function removeSigner(uint8 which) external {
        address signer = vm.addr(pool[which % pool.length]);
        if (!hub.isSigner(signer) || hub.signerCount() <= hub.threshold()) return;
        vm.prank(owner);
        hub.removeSigner(signer);
        _observe();
    }

    function setThreshold(uint8 t) external {
        uint8 threshold = uint8(bound(t, 1, hub.signerCount()));
        vm.prank(owner); // applies to the next call only: compute arguments first
        hub.setThreshold(threshold);
        _observe();
    }

    function warp(uint16 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 600);
        _observe();
    }

    function _observe() internal {
        for (uint256 i = 0; i < FEEDS; ++i) {
            (,, uint32 round,,) = hub.latest(feedId(i));
            if (round < highestSeen[i]) roundWentBack = true;
            else applied += round - highestSeen[i];
            highestSeen[i] = round;
        }
    }
}

/// @notice Invariants: rounds only increase, one at a time; a landed batch moves each feed exactly as
///         the rules predict; a stored value always came from a batch signed by a quorum of the signer
///         set at that time; stored values stay inside the bounds.
contract OracleHubInvariantTest is Test {
    OracleHub internal hub;
    HubHandler internal handler;

    function setUp() public {
        vm.warp(1_763_700_000);
        uint256[] memory keys = new uint256[](6);
        address[] memory initial = new address[](3);
        for (uint256 i = 0; i < 6; ++i) {
            keys[i] = 0x1000 + i;
        }
        for (uint256 i = 0; i < 3; ++i) {
            initial[i] = vm.addr(keys[i]);
        }
        hub = new OracleHub(address(this), initial, 2, 60);
        handler = new HubHandler(hub, address(this), keys);
        for (uint256 i = 0; i < 4; ++i) {
            hub.addFeed(handler.feedId(i), 8, handler.MIN(), handler.MAX(), 60, 120, "inv");
        }
    }

    /// @dev forge fuzzes only the handler's functions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_RoundsOnlyIncrease() public view {
        vm.assertFalse(handler.roundWentBack());
        for (uint256 i = 0; i < 4; ++i) {
            (,, uint32 round,,) = hub.latest(handler.feedId(i));
            vm.assertEq(uint256(round), uint256(handler.highestSeen(i)));
        }
    }

    function invariant_StoredValueCameFromQuorumBatch() public view {
        vm.assertFalse(handler.acceptedWithoutQuorum());
        for (uint256 i = 0; i < 4; ++i) {
            (int128 price,, uint32 round, uint32 observedAt,) = hub.latest(handler.feedId(i));
            if (round == 0) continue;
            vm.assertTrue(handler.signedByQuorum(i, round, keccak256(abi.encode(price, observedAt))));
        }
    }

    /// @dev Rounds are consecutive: the round before the latest was stored too, observed no later.
    function invariant_RoundsAreConsecutive() public view {
        for (uint256 i = 0; i < 4; ++i) {
            (,, uint32 round, uint32 observedAt,) = hub.latest(handler.feedId(i));
            if (round < 2) continue;
            (, uint32 previousAt,) = hub.getRoundData(handler.feedId(i), round - 1);
            vm.assertLe(previousAt, observedAt, "observation times never go back");
        }
    }

    function invariant_LandedBatchesFollowTheRules() public view {
        vm.assertFalse(handler.predictionMissed());
    }

    function invariant_ValuesInsideBounds() public view {
        for (uint256 i = 0; i < 4; ++i) {
            (int128 price,, uint32 round,,) = hub.latest(handler.feedId(i));
            if (round == 0) continue;
            vm.assertTrue(price > handler.MIN() && price < handler.MAX());
        }
    }

    /// @dev Not vacuous: the handler's valid-quorum path lands every batch, most reports in them apply (and
    ///      as the handler predicted), every feed moves, and the ghost state sees it.
    function test_HandlerLandsBatches() public {
        for (uint256 i = 0; i < 16; ++i) {
            handler.submit(i, 0x80, 4); // bound(4, 1, 5) is 5 reports
            if (i % 4 == 3) handler.warp(30);
        }
        emit log_named_uint("reports sent", handler.reportsSent());
        emit log_named_uint("reports applied", handler.applied());
        vm.assertEq(handler.accepted(), 16, "every quorum batch lands");
        vm.assertGt(handler.applied() * 2, handler.reportsSent()); // most reports apply
        vm.assertFalse(handler.predictionMissed());
        invariant_RoundsOnlyIncrease();
        invariant_StoredValueCameFromQuorumBatch();
        invariant_RoundsAreConsecutive();
        invariant_ValuesInsideBounds();
        for (uint256 i = 0; i < 4; ++i) {
            (,, uint32 round,,) = hub.latest(handler.feedId(i));
            vm.assertGt(round, 1);
        }
    }
}
