-- credit_counter: images accepted but whose result has not yet left the output, i.e.
-- in-flight images plus results waiting in the result FIFO. A new image may start only
-- while that number is below LIMIT (the result FIFO's depth), so every result that the
-- network produces finds a free FIFO entry: the network's done strobe has no
-- back-pressure, and nothing may be lost when the consumer stalls.
-- The two assertions (simulation only: synthesis would turn them into $fatal tasks that
-- yosys rejects) catch a caller that breaks the protocol.
library ieee;
use ieee.std_logic_1164.all;

entity credit_counter is
  generic (
    LIMIT : positive := 4  -- images allowed between take and give
  );
  port (
    clk    : in  std_logic;
    rst    : in  std_logic;
    take   : in  std_logic;  -- an image starts (only while ok = '1')
    give   : in  std_logic;  -- a result leaves the output
    ok     : out std_logic;  -- another image may start
    used   : out natural range 0 to LIMIT
  );
end entity credit_counter;

architecture rtl of credit_counter is
  signal n : natural range 0 to LIMIT := 0;
begin
  ok   <= '1' when n < LIMIT else '0';
  used <= n;

  p_count : process (clk)
  begin
    if rising_edge(clk) then
      if take = '1' and give = '0' then
        -- pragma translate_off
        assert n < LIMIT report "credit_counter: take without credit" severity failure;
        -- pragma translate_on
        n <= n + 1;
      elsif give = '1' and take = '0' then
        -- pragma translate_off
        assert n > 0 report "credit_counter: give without take" severity failure;
        -- pragma translate_on
        n <= n - 1;
      end if;
      if rst = '1' then
        n <= 0;
      end if;
    end if;
  end process p_count;
end architecture rtl;
